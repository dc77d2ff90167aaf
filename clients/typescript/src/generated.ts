/** The generated pdv.v1 messages, enums and grpc-js clients (scripts/gen_clients.py; do not edit src/gen). */

export * as admin from "./gen/pdv/v1/admin.js";
export * as event from "./gen/pdv/v1/event.js";
export * as request from "./gen/pdv/v1/request.js";
export * as subject from "./gen/pdv/v1/subject.js";
export * as token from "./gen/pdv/v1/token.js";
