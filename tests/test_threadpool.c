/* The CPU backend's thread pool: every task of a job runs exactly once whatever the task and
 * thread counts, jobs run back to back, a nested orx_pool_run runs inline on the calling
 * thread, and pools are created and destroyed many times (leak-free under ASan). */
#include <pthread.h>
#include <stdatomic.h>

#include "testutil.h"

#include "threadpool.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct count_job {
  atomic_int *hits;
  atomic_int calls;
} count_job;

static void count_task(void *arg, int64_t t) {
  count_job *j = arg;
  atomic_fetch_add(&j->hits[t], 1);
  atomic_fetch_add(&j->calls, 1);
}

static void every_task_runs_once(void **state) {
  (void)state;
  static const int threads[] = {1, 2, 3, 4, 8};
  static const int64_t counts[] = {0, 1, 2, 3, 5, 7, 8, 64, 1000, 4097};
  atomic_int *hits = malloc(4097 * sizeof *hits);
  assert_non_null(hits);
  for (size_t a = 0; a < LEN(threads); a++) {
    orx_pool *p = orx_pool_create(threads[a]);
    assert_non_null(p);
    assert_int_equal(orx_pool_threads(p), threads[a]);
    for (int rep = 0; rep < 3; rep++)
      for (size_t b = 0; b < LEN(counts); b++) {
        int64_t n = counts[b];
        for (int64_t t = 0; t < n; t++) atomic_init(&hits[t], 0);
        count_job j = {hits, 0};
        orx_pool_run(p, n, count_task, &j);
        /* the run is over when it returns: nothing may still be counting */
        assert_int_equal(atomic_load(&j.calls), (int)n);
        for (int64_t t = 0; t < n; t++)
          if (atomic_load(&hits[t]) != 1)
            fail_msg("threads %d, %lld tasks: task %lld ran %d times", threads[a], (long long)n,
                     (long long)t, atomic_load(&hits[t]));
      }
    orx_pool_destroy(p);
  }
  free(hits);
}

/* Many short jobs back to back: the hand-over between jobs must not lose or repeat a task. */
static void many_short_jobs(void **state) {
  (void)state;
  orx_pool *p = orx_pool_create(4);
  assert_non_null(p);
  atomic_int hits[6];
  for (int rep = 0; rep < 2000; rep++) {
    int64_t n = 2 + rep % 5;
    for (int64_t t = 0; t < n; t++) atomic_init(&hits[t], 0);
    count_job j = {hits, 0};
    orx_pool_run(p, n, count_task, &j);
    assert_int_equal(atomic_load(&j.calls), (int)n);
    for (int64_t t = 0; t < n; t++) assert_int_equal(atomic_load(&hits[t]), 1);
  }
  orx_pool_destroy(p);
}

/* ---- nesting ---- */

typedef struct nest_job {
  orx_pool *pool;
  atomic_int inner_hits[4 * 5];
  atomic_int wrong_thread;
  atomic_int outer_done;
} nest_job;

typedef struct inner_arg {
  nest_job *j;
  int64_t outer;
  pthread_t caller;
} inner_arg;

static void inner_task(void *arg, int64_t t) {
  inner_arg *a = arg;
  if (!pthread_equal(pthread_self(), a->caller)) atomic_fetch_add(&a->j->wrong_thread, 1);
  atomic_fetch_add(&a->j->inner_hits[a->outer * 5 + t], 1);
}

static void outer_task(void *arg, int64_t t) {
  nest_job *j = arg;
  inner_arg a = {j, t, pthread_self()};
  orx_pool_run(j->pool, 5, inner_task, &a); /* inline: the pool is busy with this very job */
  for (int k = 0; k < 5; k++)
    if (atomic_load(&j->inner_hits[t * 5 + k]) != 1) atomic_fetch_add(&j->wrong_thread, 100);
  atomic_fetch_add(&j->outer_done, 1);
}

static void nested_runs_inline(void **state) {
  (void)state;
  for (int threads = 1; threads <= 3; threads++) {
    orx_pool *p = orx_pool_create(threads);
    assert_non_null(p);
    nest_job j;
    memset(&j, 0, sizeof j);
    j.pool = p;
    orx_pool_run(p, 4, outer_task, &j);
    assert_int_equal(atomic_load(&j.outer_done), 4);
    assert_int_equal(atomic_load(&j.wrong_thread), 0);
    for (int k = 0; k < 20; k++) assert_int_equal(atomic_load(&j.inner_hits[k]), 1);
    orx_pool_destroy(p);
  }
}

/* ---- lifetime ---- */

static void create_and_destroy_many_times(void **state) {
  (void)state;
  atomic_int hits[16];
  for (int rep = 0; rep < 100; rep++) {
    orx_pool *p = orx_pool_create(1 + rep % 6);
    assert_non_null(p);
    if (rep % 2) { /* half of them never run a job */
      for (int t = 0; t < 16; t++) atomic_init(&hits[t], 0);
      count_job j = {hits, 0};
      orx_pool_run(p, 16, count_task, &j);
      assert_int_equal(atomic_load(&j.calls), 16);
    }
    orx_pool_destroy(p);
  }
  orx_pool_destroy(NULL); /* a no-op */
  /* thread counts below 1 mean 1 */
  orx_pool *p = orx_pool_create(0);
  assert_non_null(p);
  assert_int_equal(orx_pool_threads(p), 1);
  orx_pool_destroy(p);
}

/* Without a pool (NULL) a job still runs, on the caller. */
static void null_pool_runs_inline(void **state) {
  (void)state;
  atomic_int hits[9];
  for (int t = 0; t < 9; t++) atomic_init(&hits[t], 0);
  count_job j = {hits, 0};
  orx_pool_run(NULL, 9, count_task, &j);
  assert_int_equal(atomic_load(&j.calls), 9);
  assert_int_equal(orx_pool_threads(NULL), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_task_runs_once),  cmocka_unit_test(many_short_jobs),
      cmocka_unit_test(nested_runs_inline),    cmocka_unit_test(create_and_destroy_many_times),
      cmocka_unit_test(null_pool_runs_inline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
