package istio

import "strings"

// Protocols, as Istio spells them.
const (
	ProtoHTTP    = "HTTP"
	ProtoHTTP2   = "HTTP2"
	ProtoGRPC    = "GRPC"
	ProtoGRPCWeb = "GRPC-WEB"
	ProtoHTTPS   = "HTTPS"
	ProtoTCP     = "TCP"
	ProtoTLS     = "TLS"
	ProtoUDP     = "UDP"
)

// knownProtocols are the protocols Istio's protocol.Parse accepts.
var knownProtocols = map[string]string{
	"http": ProtoHTTP, "http2": ProtoHTTP2, "grpc": ProtoGRPC, "grpc-web": ProtoGRPCWeb,
	"https": ProtoHTTPS, "tcp": ProtoTCP, "tls": ProtoTLS, "udp": ProtoUDP,
	"mongo": "MONGO", "redis": "REDIS", "mysql": "MYSQL", "http_proxy": "HTTP_PROXY",
}

// ParseProtocol maps a protocol name (any case) to Istio's spelling, "" when unknown.
func ParseProtocol(p string) string {
	return knownProtocols[strings.ToLower(p)]
}

// InferProtocol is Istio's port protocol rule: appProtocol when set (with
// Kubernetes' kubernetes.io/h2c, ws, wss), else the port name's prefix before
// "-" ("http-web" is HTTP, "grpc-web" is GRPC-WEB); anything else is TCP.
func InferProtocol(portName, appProtocol string) string {
	name := portName
	if appProtocol != "" {
		switch appProtocol {
		case "kubernetes.io/h2c":
			return ProtoHTTP2
		case "kubernetes.io/ws":
			return ProtoHTTP
		case "kubernetes.io/wss":
			return ProtoHTTPS
		}
		name = appProtocol
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "grpc-web") {
		return ProtoGRPCWeb
	}
	if i := strings.IndexByte(lower, '-'); i >= 0 {
		lower = lower[:i]
	}
	if p := ParseProtocol(lower); p != "" {
		return p
	}
	return ProtoTCP
}
