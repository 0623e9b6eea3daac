package platform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/pmo-dev/pmo/config"
)

const (
	// EncodingEncrypted is the metadata encoding of a payload that PayloadCodec encrypted.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names, in an encrypted payload's metadata, the key that encrypted it.
	MetadataKeyID = "encryption-key-id"
)

// PayloadCodec encrypts payloads with AES-256-GCM. The whole payload (metadata and
// data) is sealed into the new one's data, so its original encoding is hidden too;
// the new payload's metadata says only that it is encrypted and with which key.
type PayloadCodec struct {
	currentID string
	keys      map[string]cipher.AEAD
}

// KeyID is a payload key's ID: the first 8 bytes of its SHA-256, in hex. It names the
// key in payloads and errors without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// NewPayloadCodec returns a codec that encrypts with current and decrypts with current
// or any of old.
func NewPayloadCodec(current []byte, old ...[]byte) (*PayloadCodec, error) {
	pc := &PayloadCodec{currentID: KeyID(current), keys: map[string]cipher.AEAD{}}
	for _, k := range append([][]byte{current}, old...) {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("payload key %s: %w", KeyID(k), err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("payload key %s: %w", KeyID(k), err)
		}
		pc.keys[KeyID(k)] = aead
	}
	return pc, nil
}

// NewPayloadCodecFromConfig is the codec PMO_PAYLOAD_KEY and PMO_PAYLOAD_KEYS_OLD
// describe, or nil when PMO_PAYLOAD_KEY is not set.
func NewPayloadCodecFromConfig(cfg config.Config) (*PayloadCodec, error) {
	current, old, err := cfg.PayloadKeys.Decode()
	if err != nil || current == nil {
		return nil, err
	}
	return NewPayloadCodec(current, old...)
}

// Encode encrypts each payload with the current key. The key ID is the additional
// data, so a payload whose ID was swapped does not decrypt.
func (pc *PayloadCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := pc.keys[pc.currentID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(pc.currentID),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(pc.currentID)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key its metadata names. Payloads
// that are not encrypted pass unchanged: histories written before encryption was
// turned on stay readable.
func (pc *PayloadCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := pc.keys[id]
		if !ok {
			return nil, fmt.Errorf("decrypt payload: it was encrypted with key %q, which is neither PMO_PAYLOAD_KEY nor in PMO_PAYLOAD_KEYS_OLD", id)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, fmt.Errorf("decrypt payload: too short")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w", id, err)
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(plain, out[i]); err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
	}
	return out, nil
}

// DataConverter is the converter every PMO client uses: the SDK's default, wrapped in
// the payload codec when PMO_PAYLOAD_KEY is set.
func DataConverter(cfg config.Config) (converter.DataConverter, error) {
	pc, err := NewPayloadCodecFromConfig(cfg)
	if err != nil || pc == nil {
		return converter.GetDefaultDataConverter(), err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), pc), nil
}
