// Command weft-derp is a standalone DERP relay and STUN server, flag
// compatible with Tailscale's derper.
//
// Beyond derper's flags:
//
//	-verify-control-url URL           admit only node keys registered (and
//	                                  not expired) in this weft-control; it
//	                                  asks GET URL/api/v1/nodekeys/<key>
//	-verify-control-api-key-file F    the API key for that (weft-control
//	                                  apikeys create); default $WEFT_API_KEY
//	-verify-control-fail-open         admit when weft-control cannot be
//	                                  reached (default false: fail closed)
//	-debug-listen ADDR                Go's profiler on a private address
//
// -verify-control-url reads the key from a file or the environment, never
// from the command line, where other local users could see it.
package main
