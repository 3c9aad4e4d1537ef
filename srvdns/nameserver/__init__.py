"""The DNS name server: UDP/TCP listeners, the query pipeline and the pure answer logic."""
