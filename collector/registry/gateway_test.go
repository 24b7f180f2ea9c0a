package registry_test

import (
	"github.com/cordon-edr/cordon/collector/gateway"
	"github.com/cordon-edr/cordon/collector/registry"
)

var (
	_ gateway.Registry = (*registry.Registry)(nil)
	_ gateway.Enroller = (*registry.Registry)(nil)
)
