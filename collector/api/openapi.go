package api

import _ "embed"

// openAPIDoc is the OpenAPI 3.1 description of the API, written by hand;
// TestOpenAPIMatchesRoutes holds it to the route table.
//
//go:embed openapi.json
var openAPIDoc []byte
