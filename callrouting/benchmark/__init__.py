"""Tools that measure the product from outside, beside it like the local phone network: the product never imports
them.

- calls: `manage.py benchmark` (`make bench`), the product as in production under simulated calls.
- large_account: a large customer's account built with bulk inserts, for `manage.py bench_pages` (`make
  bench-pages`), `manage.py seed_large_account` and the tests that check query counts do not grow with the account.
"""
