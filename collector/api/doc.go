// Package api serves the collector's REST API (docs/api.md): JSON under
// /api/v1/ with bearer API keys and roles, the OpenAPI document at
// /api/v1/openapi.json, and Prometheus metrics at /metrics.
//
// Routes are one table (routes in api.go) from which both the mux and the
// test that holds the OpenAPI document to it are built.
package api
