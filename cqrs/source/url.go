package source

import (
	"fmt"
	"net/url"
	"strings"
)

// OpenURL opens a broker source from a URL:
//
//	kafka://host:9092,host2:9092/topic?group=rosen-cqrs
//	amqp://guest:guest@127.0.0.1:5672/vhost?queue=events
func OpenURL(raw string, batch int) (Source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: source %q: %w", ErrConfig, raw, err)
	}
	switch u.Scheme {
	case "kafka":
		group := u.Query().Get("group")
		if group == "" {
			group = "rosen-cqrs"
		}
		return NewKafka(KafkaConfig{Brokers: strings.Split(u.Host, ","), Topic: strings.TrimPrefix(u.Path, "/"), Group: group})
	case "amqp", "amqps":
		q := u.Query()
		queue := q.Get("queue")
		q.Del("queue")
		u.RawQuery = q.Encode()
		return NewRabbitMQ(RabbitMQConfig{URL: u.String(), Queue: queue}, 2*batch)
	}
	return nil, fmt.Errorf("%w: source %q: scheme must be kafka or amqp", ErrConfig, raw)
}
