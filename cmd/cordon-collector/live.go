package main

import (
	"context"

	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/gateway"
	"github.com/cordon-edr/cordon/collector/iocset"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/ruleset"
	"github.com/cordon-edr/cordon/protocol"
)

// liveRegistry tells the event hub when an agent connects, heartbeats or
// goes away, so that open consoles refresh their fleet view.
type liveRegistry struct {
	gateway.Registry
	hub *events.Hub
}

func (r liveRegistry) Connected(ctx context.Context, agentID string, hello *protocol.Hello, remote string) error {
	err := r.Registry.Connected(ctx, agentID, hello, remote)
	r.hub.Publish(events.KindAgent, agentID)
	return err
}

func (r liveRegistry) Heartbeat(ctx context.Context, agentID string, hb *protocol.Heartbeat) error {
	err := r.Registry.Heartbeat(ctx, agentID, hb)
	r.hub.Publish(events.KindAgent, agentID)
	return err
}

func (r liveRegistry) Disconnected(agentID string) {
	r.Registry.Disconnected(agentID)
	r.hub.Publish(events.KindAgent, agentID)
}

// liveCommands tells the event hub when a command is delivered or
// finished, so that open consoles show its progress.
type liveCommands struct {
	gateway.Commands
	hub *events.Hub
}

func (c liveCommands) Delivered(ctx context.Context, commandID string) error {
	err := c.Commands.Delivered(ctx, commandID)
	c.hub.Publish(events.KindCommand, commandID)
	return err
}

func (c liveCommands) Finished(ctx context.Context, agentID string, res *protocol.CommandResult) error {
	err := c.Commands.Finished(ctx, agentID, res)
	c.hub.Publish(events.KindCommand, res.GetId())
	return err
}

// liveRules hands the gateway the pushed rule sets and records each
// agent's answer on the agent, telling open consoles.
type liveRules struct {
	*ruleset.Store
	reg *registry.Registry
	hub *events.Hub
}

func (r liveRules) Result(ctx context.Context, agentID string, res *protocol.RuleSetResult) error {
	err := r.reg.RulesResult(ctx, agentID, res)
	r.hub.Publish(events.KindAgent, agentID)
	return err
}

// liveIndicators hands the gateway the pushed indicator sets and records
// each agent's answer on the agent, telling open consoles.
type liveIndicators struct {
	*iocset.Store
	reg *registry.Registry
	hub *events.Hub
}

func (r liveIndicators) Result(ctx context.Context, agentID string, res *protocol.IndicatorSetResult) error {
	err := r.reg.IocsResult(ctx, agentID, res)
	r.hub.Publish(events.KindAgent, agentID)
	return err
}
