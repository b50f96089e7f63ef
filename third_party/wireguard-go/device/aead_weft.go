/* SPDX-License-Identifier: MIT
 *
 * weft: lets the embedding program choose the ChaCha20-Poly1305
 * implementation of transport data (the handshake keeps x/crypto's).
 */

package device

import (
	"crypto/cipher"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEADFunc returns a ChaCha20-Poly1305 AEAD for a 32-byte key.
type AEADFunc func(key []byte) (cipher.AEAD, error)

// SetTransportAEAD makes keypairs created from now on encrypt and decrypt
// transport data with f (nil restores x/crypto's ChaCha20-Poly1305).
func (device *Device) SetTransportAEAD(f AEADFunc) {
	if f == nil {
		device.aead.Store(nil)
		return
	}
	device.aead.Store(&f)
}

func (device *Device) transportAEAD() AEADFunc {
	if f := device.aead.Load(); f != nil {
		return *f
	}
	return chacha20poly1305.New
}
