/* SHA-256 against the FIPS 180-2 example vectors and against sha256sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema/sha256.h"

static void test_fips_vectors(void **state)
{
    (void)state;
    char hex[65];
    spec_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    spec_sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    spec_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* one million 'a', fed in uneven pieces */
    spec_sha256_ctx c;
    unsigned char d[32];
    char a[1000];
    memset(a, 'a', sizeof a);
    spec_sha256_init(&c);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        if (n > sizeof a)
            n = sizeof a;
        spec_sha256_update(&c, a, n);
        left -= n;
        step = step * 7 % 997 + 1;
    }
    spec_sha256_final(&c, d);
    static const unsigned char want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
                                           0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
                                           0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, 32);
}

/* Every length around the block and padding boundaries, checked by coreutils. */
static void test_against_sha256sum(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_sha256_XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const size_t lens[] = {1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65537, 1 << 20};
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < (1 << 20); i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (unsigned char)(x >> 24);
    }
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        char path[128], cmd[256], line[256], hex[65];
        snprintf(path, sizeof path, "%s/f", dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, lens[k], f), lens[k]);
        assert_int_equal(fclose(f), 0);
        snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof line, p));
        assert_int_equal(pclose(p), 0);
        spec_sha256_hex(buf, lens[k], hex);
        assert_memory_equal(line, hex, 64);
        unlink(path);
    }
    rmdir(dir);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_against_sha256sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
