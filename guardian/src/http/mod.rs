//! HTTP on loopback: `/metrics`, `/healthz` and the JSON API under `/api/v1/`.
