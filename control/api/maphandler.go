package api

import (
	"net/http"

	"weft.dev/weft/control/state"
	"weft.dev/weft/wire/ctrl"
)

func (s *Server) handleMap(w http.ResponseWriter, r *http.Request) {
	machine, req, ok := readRequest(w, r, ctrl.DecodeMapRequest, func(q *ctrl.MapRequest) ctrl.CapabilityVersion { return q.Version })
	if !ok {
		return
	}
	n, ok := s.state.NodeByKey(req.NodeKey)
	if !ok {
		// Never answer with an empty 200 (the client would re-poll in a
		// loop, control.md §7.3); an error status makes it back off.
		http.Error(w, "node not found: it may have been deleted; log in again", http.StatusUnauthorized)
		return
	}
	if n.MachineKey != machine {
		http.Error(w, "node key does not belong to this machine", http.StatusForbidden)
		return
	}
	var err error
	if _, err = s.state.ApplyMapUpdate(r.Context(), n.ID, mapUpdate(req)); err != nil {
		s.log.Warn("map update", "node", n.ID, "err", err)
		http.Error(w, "update failed", http.StatusInternalServerError)
		return
	}
	if !req.Stream {
		s.metrics.liteUpdates.Inc()
		if req.OmitPeers {
			w.WriteHeader(http.StatusOK)
			return
		}
		// One-shot full map: not used by tailscaled, but cheap to serve.
		if err := s.batcher.WriteFullMap(r.Context(), n.ID, req.Compress == "zstd", w); err != nil {
			s.log.Warn("one-shot map", "node", n.ID, "err", err)
		}
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	err = s.batcher.Serve(r.Context(), n.ID, req.Compress == "zstd", int(req.Version), w, flusher.Flush)
	s.log.Debug("map stream ended", "node", n.ID, "err", err)
}

// mapUpdate extracts what a map request reports about its node.
func mapUpdate(req *ctrl.MapRequest) state.MapUpdate {
	u := state.MapUpdate{
		DiscoKey:  req.DiscoKey,
		Endpoints: req.Endpoints,
		Cap:       int(req.Version),
	}
	if req.Hostinfo != nil {
		if req.Hostinfo.NetInfo != nil {
			u.HomeDERP = req.Hostinfo.NetInfo.PreferredDERP
		}
		u.Hostname, u.Hostinfo, u.AdvertisedRoutes = hostinfoParts(req.Hostinfo)
	}
	return u
}
