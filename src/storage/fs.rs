//! The filesystem backend: keys are paths under a root directory.
