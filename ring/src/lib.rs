//! Consistent-hash ring for ringraft: pure, specified in docs/ring.md
