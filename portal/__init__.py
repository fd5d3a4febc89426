"""What every portal page shares: the client's address, audited lookups, score timelines."""
