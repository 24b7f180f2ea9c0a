package command_test

import (
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/gateway"
)

var _ gateway.Commands = (*command.Queue)(nil)
