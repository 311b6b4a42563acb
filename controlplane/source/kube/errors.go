package kube

import "errors"

// Sentinel errors of the Kubernetes source.
var (
	ErrNoClusters        = errors.New("kube: no clusters")
	ErrDuplicateCluster  = errors.New("kube: duplicate cluster id")
	ErrKubeconfig        = errors.New("kube: bad kubeconfig")
	ErrUnexpectedObject  = errors.New("kube: unexpected object")
	ErrUnknownConfigMode = errors.New("kube: unknown config mode")
)
