// Package export delivers incidents and findings to other incident
// systems: webhooks, syslog receivers (CEF or JSON), JSON-lines files,
// Splunk's HTTP Event Collector and TheHive.
//
// Delivery goes through a durable outbox in the collector's badger store.
// The incident engine calls Outbox.IncidentChanged inside the transaction
// that changes an incident, so an outbox entry commits with the change or
// not at all. One worker per sink then sends its queue in order, deleting
// an entry only once the receiver accepted it (at least once), retrying
// with exponential backoff, and parking an entry in the sink's dead-letter
// queue after the configured number of attempts, from where Replay puts
// it back in the queue.
package export
