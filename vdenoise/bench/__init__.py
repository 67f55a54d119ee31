"""`vdenoise bench`: the papers' test protocol on standard datasets, beside classical baselines."""
