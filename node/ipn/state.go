package ipn

import (
	"encoding/json"
	"fmt"
)

// State is the backend's state (ipn.State upstream; same numbering and
// names, which appear in `status --json` as BackendState).
type State int

// Backend states.
const (
	NoState          State = 0
	InUseOtherUser   State = 1
	NeedsLogin       State = 2
	NeedsMachineAuth State = 3
	Stopped          State = 4
	Starting         State = 5
	Running          State = 6
)

var stateNames = [...]string{
	NoState:          "NoState",
	InUseOtherUser:   "InUseOtherUser",
	NeedsLogin:       "NeedsLogin",
	NeedsMachineAuth: "NeedsMachineAuth",
	Stopped:          "Stopped",
	Starting:         "Starting",
	Running:          "Running",
}

// String returns the upstream name, e.g. "Running".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of String.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return NoState, fmt.Errorf("unknown backend state %q", s)
}

// MarshalJSON encodes the state as its number, as upstream's Notify does.
func (s State) MarshalJSON() ([]byte, error) { return json.Marshal(int(s)) }
