package relay

// DisableInlineWrites makes every batch go through the destination's
// writer goroutine, so tests can cover both write paths.
func DisableInlineWrites(s *Server) { s.noInline = true }
