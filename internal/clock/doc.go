// Package clock is the injectable time source used across weft so tests can
// run on fake time. It imports only the standard library.
package clock
