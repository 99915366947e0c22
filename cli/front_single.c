/* front_single.c - q4train as one process: nothing to combine (front.h). */
#include "front.h"

int front_start(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}
int front_rank(void) { return 0; }
int front_processes(void) { return 1; }
int front_local_processes(void) { return 1; }
const char *front_name(void) { return "q4train"; }
int front_attach(q4_session *session, char *err, size_t size) {
    (void)session;
    (void)err;
    (void)size;
    return 0;
}
int front_first_different(const char *text) {
    (void)text;
    return -1;
}
int front_any(int flag) { return flag; }
void front_combine_stats(double *seconds, double *bytes, long long *calls) {
    *seconds = *bytes = 0.0;
    *calls = 0;
}
int front_finish(int rc) { return rc; }
