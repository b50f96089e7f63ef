package ctrl

import "encoding/json"

// RawMessageValue is an opaque JSON value (capability values are raw JSON on the wire).
type RawMessageValue = json.RawMessage
