package main

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pmo-dev/pmo/config"
)

// The codec endpoints follow Temporal's remote codec protocol: the Web UI and the CLI
// (--codec-endpoint <PMO>/codec) POST {"payloads": [...]} to {endpoint}/decode or
// /encode and get the same shape back.
const (
	codecEncodePath = "/codec/encode"
	codecDecodePath = "/codec/decode"
)

// codecRoutes registers the codec endpoints, and answers the browser's CORS preflight
// for them before authentication: a preflight carries no credentials, so it must not
// need a key, while the POST that follows does. Only the Web UI's origin
// (TEMPORAL_UI_URL) may call them from a browser.
func (s *Server) codecRoutes(e *echo.Echo) {
	e.Pre(middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return p != codecEncodePath && p != codecDecodePath
		},
		AllowOrigins:     []string{config.Origin(s.UIURL)},
		AllowMethods:     []string{http.MethodPost},
		AllowHeaders:     []string{echo.HeaderContentType, echo.HeaderAuthorization, "X-Namespace"},
		AllowCredentials: true,
		MaxAge:           600,
	}))
	e.POST(codecEncodePath, s.codec(true))
	e.POST(codecDecodePath, s.codec(false))
}

// codec encrypts or decrypts the payloads posted with the payload codec. Without
// PMO_PAYLOAD_KEY there is no codec and payloads come back as they came.
func (s *Server) codec(encode bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
		if err != nil {
			return decodeProblem(err)
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			return problem(http.StatusBadRequest, "the body must be Temporal payloads as JSON, {\"payloads\": [...]}: "+err.Error())
		}
		out := in.GetPayloads()
		if s.Codec != nil {
			if encode {
				out, err = s.Codec.Encode(out)
			} else {
				out, err = s.Codec.Decode(out)
			}
			if err != nil {
				return problem(http.StatusUnprocessableEntity, err.Error())
			}
		}
		b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, b)
	}
}

// dataConverter reads payloads the way the Temporal client does: decrypting them
// when PMO_PAYLOAD_KEY is set.
func (s *Server) dataConverter() converter.DataConverter {
	s.converterOnce.Do(func() {
		s.converter = converter.GetDefaultDataConverter()
		if s.Codec != nil {
			s.converter = converter.NewCodecDataConverter(s.converter, s.Codec)
		}
	})
	return s.converter
}
