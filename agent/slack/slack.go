package slack

import (
	"errors"
	"time"
)

// Default is the timer slack the agent runs with.
const Default = time.Millisecond

// ErrUnsupported is wrapped by Apply's error on systems without a timer
// slack to set.
var ErrUnsupported = errors.New("timer slack cannot be set on this system")

// execMarker is set in the environment of the program Apply executes
// again, so that the new image does not do it once more should the
// kernel not keep the slack (a real-time thread has none).
const execMarker = "CORDON_TIMER_SLACK_EXEC"
