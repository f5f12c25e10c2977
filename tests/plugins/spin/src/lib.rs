//! test-plugin-spin
