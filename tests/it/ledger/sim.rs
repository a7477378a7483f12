//! The ledger simulator (filled in below).
