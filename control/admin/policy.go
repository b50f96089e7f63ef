package admin

import (
	"errors"
	"fmt"
	"net/http"

	"weft.dev/weft/control/state"
	"weft.dev/weft/policy"
)

// maxPolicyBody is the request limit on policy routes: a policy file may
// be larger than other admin bodies (the parser's own limit is 4 MiB).
const maxPolicyBody = 5 << 20

func policyJSON(info state.PolicyInfo) Policy {
	return Policy{Policy: info.Text, Version: info.Version, Updated: info.Updated, File: info.File, Set: info.Text != ""}
}

// policyErrors converts a policy error to its line:column list.
func policyErrors(err error) []PolicyError {
	var es policy.Errors
	if !errors.As(err, &es) {
		return nil
	}
	out := make([]PolicyError, len(es))
	for i, e := range es {
		out[i] = PolicyError{Line: e.Line, Column: e.Col, Message: e.Msg}
	}
	return out
}

func (h *handler) getPolicy(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, policyJSON(h.st.Policy()))
}

// setPolicy validates, stores and applies a policy. An invalid one is
// refused with every problem located, and the active policy stays.
func (h *handler) setPolicy(w http.ResponseWriter, r *http.Request) {
	var req SetPolicyRequest
	if !decode(w, r, &req, `{"policy":"{\"acls\": [...]}"}`) {
		return
	}
	if h.policyFile != "" {
		writeError(w, http.StatusConflict, fmt.Sprintf("the policy is managed by the file %s (--policy-file): edit that file instead; weft-control reloads it within a second", h.policyFile))
		return
	}
	res, err := h.st.SetPolicy(r.Context(), []byte(req.Policy), state.PolicyOrigin{})
	switch {
	case errors.Is(err, state.ErrPolicyUnchanged):
		writeJSON(w, http.StatusOK, SetPolicyResult{Policy: policyJSON(res.Info), Unchanged: true, AffectedNodes: []int64{}})
		return
	case err != nil:
		if pe := policyErrors(err); pe != nil {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{
				Error:  "policy rejected, the active policy is unchanged:\n" + err.Error(),
				Policy: pe,
			})
			return
		}
		fail(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, SetPolicyResult{Policy: policyJSON(res.Info), AffectedNodes: nonNil(res.Affected)})
}

// checkPolicy validates a policy and runs its tests against the current
// nodes without applying it.
func (h *handler) checkPolicy(w http.ResponseWriter, r *http.Request) {
	var req SetPolicyRequest
	if !decode(w, r, &req, `{"policy":"{\"acls\": [...]}"}`) {
		return
	}
	err := h.st.CheckPolicy([]byte(req.Policy))
	res := CheckPolicyResult{OK: err == nil, Errors: policyErrors(err)}
	if err != nil && res.Errors == nil {
		res.Errors = []PolicyError{{Message: err.Error()}}
	}
	if res.Errors == nil {
		res.Errors = []PolicyError{}
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) policyHistory(w http.ResponseWriter, r *http.Request) {
	ps, err := h.st.PolicyHistory(r.Context())
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	out := make([]PolicyVersion, 0, len(ps))
	for _, p := range ps {
		out = append(out, PolicyVersion{Version: p.ID, Created: p.CreatedAt, Bytes: len(p.Data)})
	}
	writeJSON(w, http.StatusOK, out)
}
