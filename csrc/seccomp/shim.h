/* pyrunc._libseccomp helpers; also given verbatim to cffi's cdef (keep it parsable) */
const char *prs_lib_path(void);
int prs_filter_flags_supported(unsigned int flags);
int prs_action_available(uint32_t action);
