# A PSGI app for Starman under `daemonkit run` (tests/servers.rs): which process answers,
# which Server::Starter generation it belongs to, and the sockets it was handed.
my $app = sub {
    my $env = shift;
    my $body = $env->{PATH_INFO} eq '/port'
        ? ($ENV{SERVER_STARTER_PORT} // '') . "\n"
        : "hello from starman pid $$ gen " . ($ENV{SERVER_STARTER_GENERATION} // '-') . "\n";
    return [200, ['Content-Type' => 'text/plain', 'Content-Length' => length $body], [$body]];
};
