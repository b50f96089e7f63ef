// Package api is weft-control's HTTP front: GET /key, the ts2021 Noise
// upgrade on /ts2021, the HTTP/2 handlers that run inside each Noise
// connection (/machine/register, /machine/map, /machine/set-dns, …), and the
// small pages interactive logins point users at.
//
// It authenticates every /machine/* request by the Noise machine key of its
// connection (never by Host or Ts-Lb headers), turns requests into calls on
// control/state, and hands long polls to control/mapper. It must not import
// node code.
package api
