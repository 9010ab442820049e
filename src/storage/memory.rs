//! An in-memory backend for tests.
