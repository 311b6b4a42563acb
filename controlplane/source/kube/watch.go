package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// expiryWatcher passes lists and watches through and reports a watch that
// the API server ends with 410 Gone inside the stream (an ERROR event with
// reason Expired, as an API server answers a resource version etcd has
// compacted away). client-go's reflector handles that by re-listing, but
// silently: it does not call the watch error handler for it.
type expiryWatcher struct {
	lw      cache.ListerWatcherWithContext
	expired func(error)
}

func (e *expiryWatcher) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	return e.lw.ListWithContext(ctx, o)
}

func (e *expiryWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	w, err := e.lw.WatchWithContext(ctx, o)
	if err != nil || w == nil {
		return w, err
	}
	return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
		if ev.Type == watch.Error {
			if st, ok := ev.Object.(*metav1.Status); ok {
				if err := apierrors.FromObject(st); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					e.expired(err)
				}
			}
		}
		return ev, true
	}), nil
}

// List and Watch complete cache.ListerWatcher; informers call the context forms.
func (e *expiryWatcher) List(o metav1.ListOptions) (runtime.Object, error) {
	return e.ListWithContext(context.Background(), o)
}

func (e *expiryWatcher) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return e.WatchWithContext(context.Background(), o)
}
