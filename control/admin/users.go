package admin

import (
	"fmt"
	"net/http"

	"weft.dev/weft/control/store"
)

func userJSON(u store.User) User {
	return User{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Email: u.Email, Created: u.CreatedAt}
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) {
	users := h.st.Users()
	out := make([]User, 0, len(users))
	for _, u := range users {
		out = append(out, userJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	if !decode(w, r, &req, `{"name":"alice","display_name":"Alice","email":"alice@example.com"}`) {
		return
	}
	if _, ok := h.st.UserByName(req.Name); ok {
		writeError(w, http.StatusConflict, fmt.Sprintf("user %q already exists: list users with: weft-control users list", req.Name))
		return
	}
	u, err := h.st.CreateUser(r.Context(), req.Name, req.DisplayName, req.Email)
	if err != nil {
		// Names are validated by state; a store failure is rarer than bad
		// input here.
		fail(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, userJSON(u))
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	u, ok := h.st.UserByName(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q: list users with: weft-control users list", name))
		return
	}
	var owned []string
	for _, n := range h.st.Snapshot().Nodes {
		if n.UserID == u.ID {
			owned = append(owned, n.GivenName)
		}
	}
	if len(owned) > 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("user %q still owns %d node(s) %q: delete them first with: weft-control nodes delete NODE", name, len(owned), owned))
		return
	}
	if err := h.st.DeleteUser(r.Context(), name); err != nil {
		// A node registered between the check and the delete lands here.
		fail(w, err, http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
