//go:build !amd64 || purego

package chachapoly

import "crypto/cipher"

func haveVector() bool { return false }

func newVector(key []byte, fallback cipher.AEAD) cipher.AEAD { return fallback }
