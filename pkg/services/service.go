// Package services defines the lifecycle every long-running part of Strata follows, so the module graph in
// pkg/app can start parts in dependency order and stop them in reverse.
package services

import "context"

// Service is a long-running component. Start returns once the service is usable (for an ingester: after
// WAL replay); background loops it starts run until Stop. Stop is graceful: in-flight work finishes, files
// are closed. ctx bounds only how long Start or Stop may take.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}
