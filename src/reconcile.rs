//! Reconcile: debounce -> snapshot -> translate -> commit -> metrics.
