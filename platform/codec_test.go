package platform

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

// Payloads are encrypted under the current key and its ID; a codec that also holds
// the old key reads what the old key wrote; a key it does not hold, a swapped key ID
// or a changed byte is an error; plain payloads pass through.
func TestPayloadCodecEncryptsAndRotatesKeys(t *testing.T) {
	oldKey, newKey := randomKey(t), randomKey(t)
	before, err := NewPayloadCodec(oldKey)
	require.NoError(t, err)
	after, err := NewPayloadCodec(newKey, oldKey)
	require.NoError(t, err)
	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"vm": "vm-secret-42"})
	require.NoError(t, err)

	sealed, err := before.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Equal(t, EncodingEncrypted, string(sealed[0].Metadata[converter.MetadataEncoding]))
	require.Equal(t, KeyID(oldKey), string(sealed[0].Metadata[MetadataKeyID]))
	require.False(t, bytes.Contains(sealed[0].Data, []byte("vm-secret-42")))
	again, err := before.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.NotEqual(t, sealed[0].Data, again[0].Data, "a fresh nonce for each payload")

	// The rotated codec reads the old key's payloads and writes with the new key.
	opened, err := after.Decode(sealed)
	require.NoError(t, err)
	require.True(t, proto.Equal(plain, opened[0]))
	resealed, err := after.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Equal(t, KeyID(newKey), string(resealed[0].Metadata[MetadataKeyID]))
	_, err = before.Decode(resealed)
	require.ErrorContains(t, err, "encrypted with key \""+KeyID(newKey)+"\", which is neither PMO_PAYLOAD_KEY nor in PMO_PAYLOAD_KEYS_OLD")

	swapped := proto.Clone(sealed[0]).(*commonpb.Payload)
	swapped.Metadata[MetadataKeyID] = []byte(KeyID(newKey))
	_, err = after.Decode([]*commonpb.Payload{swapped})
	require.ErrorContains(t, err, "message authentication failed")
	flipped := proto.Clone(sealed[0]).(*commonpb.Payload)
	flipped.Data[len(flipped.Data)-1] ^= 1
	_, err = after.Decode([]*commonpb.Payload{flipped})
	require.ErrorContains(t, err, "message authentication failed")

	passed, err := after.Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Same(t, plain, passed[0], "a payload written before encryption was on is read as it is")
}
