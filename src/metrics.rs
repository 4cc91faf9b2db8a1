//! Metrics and health endpoints (Prometheus text format).
