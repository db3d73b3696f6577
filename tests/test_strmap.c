/* The internal string-keyed hash map: insert, replace, remove with backward
 * shift, checked against a plain array over many random operations. */
#include "support.h"

#include "util/strmap.h"

static void test_basic(void **state) {
  (void)state;
  apsched_strmap m = {0};
  assert_null(apsched__strmap_get(&m, "a"));
  assert_null(apsched__strmap_remove(&m, "a"));
  static const char *k1 = "alpha", *k2 = "beta";
  int v1, v2, v3;
  assert_int_equal(apsched__strmap_put(&m, k1, &v1), 0);
  assert_int_equal(apsched__strmap_put(&m, k2, &v2), 0);
  assert_ptr_equal(apsched__strmap_get(&m, "alpha"), &v1);
  /* Replacing an existing key keeps the count and takes the new key pointer. */
  char copy[] = "alpha";
  assert_int_equal(apsched__strmap_put(&m, copy, &v3), 0);
  assert_int_equal(m.count, 2);
  assert_ptr_equal(apsched__strmap_get(&m, "alpha"), &v3);
  assert_ptr_equal(apsched__strmap_remove(&m, "alpha"), &v3);
  assert_null(apsched__strmap_get(&m, "alpha"));
  assert_int_equal(m.count, 1);
  apsched__strmap_free(&m);
}

static void test_random_against_reference(void **state) {
  (void)state;
  enum { KEYS = 3000 };
  static char keys[KEYS][16];
  static bool present[KEYS];
  static int values[KEYS];
  for (int i = 0; i < KEYS; i++) snprintf(keys[i], sizeof keys[i], "job-%d", i);
  apsched_strmap m = {0};
  unsigned seed = 12345;
  size_t count = 0;
  for (int op = 0; op < 200000; op++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % KEYS);
    if ((seed >> 4) & 1) {
      assert_int_equal(apsched__strmap_put(&m, keys[k], &values[k]), 0);
      if (!present[k]) count++;
      present[k] = true;
    } else {
      void *v = apsched__strmap_remove(&m, keys[k]);
      assert_ptr_equal(v, present[k] ? &values[k] : NULL);
      if (present[k]) count--;
      present[k] = false;
    }
    assert_int_equal(m.count, count);
    if (op % 1000 == 0)
      for (int i = 0; i < KEYS; i++)
        assert_ptr_equal(apsched__strmap_get(&m, keys[i]), present[i] ? &values[i] : NULL);
  }
  apsched__strmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_random_against_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
