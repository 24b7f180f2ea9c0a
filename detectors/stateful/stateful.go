package stateful

import (
	"time"

	"github.com/cordon-edr/cordon/detectors"
)

// All returns new instances of every stateful detector with default
// settings; now is the clock for events without a timestamp.
func All(now func() time.Time) []detectors.Detector {
	return []detectors.Detector{
		NewMassFileChange(MassFileChangeConfig{Now: now}),
		NewPortScan(PortScanConfig{Now: now}),
		NewSpawnBurst(SpawnBurstConfig{Now: now}),
		NewBeacon(BeaconConfig{Now: now}),
		NewFirstSeen(FirstSeenConfig{Now: now}),
	}
}
