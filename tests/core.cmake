otelprof_c_test(test-context
  CASES status_codes attach_detach nesting unwind clear zero_ids attributes bad_utf8
        oversized bad_keys key_limit depth arena_full wrong_thread thread_exit fork
        formats_env_thread_only formats_env_labels_only formats_env_bad formats_api init_opts
        custom_labels custom_labels_hex reuse shutdown resource_env resource_env_malformed
  CONCURRENT_CASES concurrency signal_handler
  LABELS core)
# The signal test wants a CPU for each of its two threads.
foreach(f static shared)
  set_tests_properties(test-context.signal_handler.${f} PROPERTIES RUN_SERIAL TRUE TIMEOUT 120)
endforeach()
