package admin

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"weft.dev/weft/control/store"
)

func dnsJSON(r store.DNSRecord) DNSRecord {
	return DNSRecord{ID: r.ID, Name: r.Name, Type: r.Type, Value: r.Value}
}

func (h *handler) listDNSRecords(w http.ResponseWriter, r *http.Request) {
	recs := h.st.DNSRecords()
	out := make([]DNSRecord, 0, len(recs))
	for _, rec := range recs {
		out = append(out, dnsJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) addDNSRecord(w http.ResponseWriter, r *http.Request) {
	var req DNSRecordRequest
	if !decode(w, r, &req, `{"name":"db.example.internal","type":"A","value":"100.64.0.5"}`) {
		return
	}
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(req.Name)), ".")
	if name == "" {
		writeError(w, http.StatusBadRequest, `missing record "name": give a DNS name like db.example.internal`)
		return
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(req.Value))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid record value %q: give an IP address, e.g. 100.64.0.5 (A) or fd7a:115c:a1e0::5 (AAAA)", req.Value))
		return
	}
	typ := strings.ToUpper(strings.TrimSpace(req.Type))
	for _, o := range h.st.DNSRecords() {
		if o.Name == name && o.Value == ip.String() && (typ == "" || o.Type == typ) {
			writeError(w, http.StatusConflict, fmt.Sprintf("record %s %s %s already exists (ID %d): nothing to do", o.Name, o.Type, o.Value, o.ID))
			return
		}
	}
	rec, err := h.st.AddDNSRecord(r.Context(), name, typ, ip.String())
	if err != nil {
		// Type/value mismatches and unsupported types come from state.
		fail(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, dnsJSON(rec))
}

func (h *handler) deleteDNSRecord(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid record ID %q: use the numeric ID shown by: weft-control dns records list", r.PathValue("id")))
		return
	}
	if !slices.ContainsFunc(h.st.DNSRecords(), func(rec store.DNSRecord) bool { return rec.ID == id }) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no DNS record with ID %d: list records with: weft-control dns records list", id))
		return
	}
	if err := h.st.DeleteDNSRecord(r.Context(), id); err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
