/* The unit tests' one partition "t-0" in a fresh temporary log dir (test_partition,
 * test_partition_txn): cmocka setup/teardown and open_p to open it again (after a close, say).
 * Include after cmocka.h, log_test_util.h and partition/partition.h. */
#ifndef GREGOR_TESTS_PARTITION_FX_H
#define GREGOR_TESTS_PARTITION_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    char *dir;
    struct log_config cfg;
    struct partition p;
};

static inline void open_p(struct fx *f)
{
    memset(&f->p, 0, sizeof(f->p));
    snprintf(f->p.dir_path, sizeof(f->p.dir_path), "%s/t-0", f->dir);
    assert_int_equal(partition_open(&f->p, "t", &f->cfg, -1, 0), KERR_NONE);
}

static inline int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    tu_config(&f->cfg);
    open_p(f);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fx *f = *state;
    if (f->p.log != NULL)
        partition_close(&f->p);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

#endif
