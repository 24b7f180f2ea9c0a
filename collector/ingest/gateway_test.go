package ingest_test

import (
	"github.com/cordon-edr/cordon/collector/gateway"
	"github.com/cordon-edr/cordon/collector/ingest"
)

var _ gateway.Ingest = (*ingest.Store)(nil)
