/* Umbrella header: every otelprof component that this installation has. */
#ifndef OTELPROF_OTELPROF_H
#define OTELPROF_OTELPROF_H

#include <otelprof/version.h>
#include <otelprof/common.h>
#include <otelprof/context.h>
#include <otelprof/propagation.h>

#endif
