# The Starman peer of dk-hello's GET /: a fixed plain-text body with its worker's pid.
my $app = sub {
    my $body = "hello from perl pid $$\n";
    return [200, ['Content-Type' => 'text/plain', 'Content-Length' => length $body,
                  'Connection' => 'close'], [$body]];
};
$app;
