<?php
// Verify the identity guichet sends to your application (PHP, openssl_* and sodium_* functions).
//
// Copy verify_assertion() and verify_signature() into your application; the command line below
// is how the guichet test suite runs them:
//
//   php verify.php --jwks-url=https://app.example.gouv.fr/.guichet/jwks.json \
//     --issuer=https://app.example.gouv.fr --audience=http://127.0.0.1:9000 \
//     --hmac-key-env=GUICHET_HMAC_KEY < request.json
//
// In a web application, read the headers from $_SERVER: X-Guichet-Sub is HTTP_X_GUICHET_SUB.
// request.json: {"method": "GET", "path": "/path?query", "headers": {"x-guichet-sub": "...", ...}}
// Exit 0 and "OK sub=..." when both proofs hold, exit 1 and "REJECTED: reason" otherwise.

declare(strict_types=1);

const ASSERTION_HEADER = 'x-guichet-assertion';
const SIGNATURE_HEADER = 'x-guichet-signature';
const LEEWAY_SECONDS = 5;

function b64url_decode(string $text): string
{
    $decoded = base64_decode(strtr($text, '-_', '+/') . str_repeat('=', (4 - strlen($text) % 4) % 4), true);
    if ($decoded === false) {
        throw new RuntimeException('invalid base64url');
    }
    return $decoded;
}

/** A P-256 JWK as a PEM public key (SubjectPublicKeyInfo). */
function ec_jwk_to_pem(array $jwk): string
{
    $der = hex2bin('3059301306072a8648ce3d020106082a8648ce3d030107034200')
        . "\x04" . b64url_decode($jwk['x']) . b64url_decode($jwk['y']);
    return "-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($der), 64, "\n") . "-----END PUBLIC KEY-----\n";
}

/** A JWS ES256 signature (r || s) as the DER sequence openssl_verify expects. */
function p1363_to_der(string $signature): string
{
    if (strlen($signature) !== 64) {
        throw new RuntimeException('bad ES256 signature length');
    }
    $integer = function (string $bytes): string {
        $bytes = ltrim($bytes, "\x00");
        if ($bytes === '' || ord($bytes[0]) > 0x7f) {
            $bytes = "\x00" . $bytes;
        }
        return "\x02" . chr(strlen($bytes)) . $bytes;
    };
    $body = $integer(substr($signature, 0, 32)) . $integer(substr($signature, 32));
    return "\x30" . chr(strlen($body)) . $body;
}

function fetch_key(string $jwksUrl, string $kid): array
{
    static $cache = [];
    for ($attempt = 0; $attempt < 2; $attempt++) {
        if ($attempt === 1 || !isset($cache[$jwksUrl])) {
            $body = file_get_contents($jwksUrl);
            if ($body === false) {
                throw new RuntimeException('cannot fetch the JWKS');
            }
            $cache[$jwksUrl] = json_decode($body, true, 16, JSON_THROW_ON_ERROR)['keys'];
        }
        foreach ($cache[$jwksUrl] as $key) {
            if (($key['kid'] ?? null) === $kid) {
                return $key;
            }
        }
    }
    throw new RuntimeException('unknown key id');
}

/** Checks the JWT's signature (key from the JWKS by kid), iss, aud, exp; returns its claims. */
function verify_assertion(string $token, string $jwksUrl, string $issuer, string $audience): array
{
    $parts = explode('.', $token);
    if (count($parts) !== 3) {
        throw new RuntimeException('not a compact JWS');
    }
    $header = json_decode(b64url_decode($parts[0]), true, 16, JSON_THROW_ON_ERROR);
    $key = fetch_key($jwksUrl, (string) ($header['kid'] ?? ''));
    $signed = $parts[0] . '.' . $parts[1];
    $signature = b64url_decode($parts[2]);
    if ($header['alg'] === 'ES256' && $key['kty'] === 'EC') {
        $ok = openssl_verify($signed, p1363_to_der($signature), ec_jwk_to_pem($key), OPENSSL_ALGO_SHA256) === 1;
    } elseif ($header['alg'] === 'EdDSA' && $key['kty'] === 'OKP') {
        $ok = sodium_crypto_sign_verify_detached($signature, $signed, b64url_decode($key['x']));
    } else {
        throw new RuntimeException('unexpected algorithm');
    }
    if (!$ok) {
        throw new RuntimeException('bad signature');
    }
    $claims = json_decode(b64url_decode($parts[1]), true, 16, JSON_THROW_ON_ERROR);
    if (($claims['iss'] ?? null) !== $issuer) {
        throw new RuntimeException('wrong issuer');
    }
    if (!in_array($audience, (array) ($claims['aud'] ?? []), true)) {
        throw new RuntimeException('wrong audience');
    }
    if (!isset($claims['exp']) || time() > $claims['exp'] + LEEWAY_SECONDS) {
        throw new RuntimeException('expired');
    }
    return $claims;
}

/** Checks X-Guichet-Signature over the method, path, time and x-guichet-* headers. */
function verify_signature(string $method, string $path, array $headers, string $key, int $maxAge = 60): void
{
    $value = $headers[SIGNATURE_HEADER] ?? null;
    if ($value === null) {
        throw new RuntimeException('no signature header');
    }
    $fields = [];
    foreach (explode(',', $value) as $part) {
        [$name, $field] = array_map('trim', explode('=', $part, 2)) + [1 => ''];
        $fields[$name] = $field;
    }
    $timestamp = (int) ($fields['t'] ?? 0);
    if (abs(time() - $timestamp) > $maxAge) {
        throw new RuntimeException('signature too old');
    }
    $lines = [];
    foreach ($headers as $name => $headerValue) {
        if (str_starts_with($name, 'x-guichet-') && $name !== ASSERTION_HEADER && $name !== SIGNATURE_HEADER) {
            $lines[$name] = $name . ':' . $headerValue . "\n";
        }
    }
    ksort($lines, SORT_STRING);
    $canonical = "v1\n$method\n$path\n$timestamp\n" . implode('', $lines);
    $expected = rtrim(strtr(base64_encode(hash_hmac('sha256', $canonical, $key, true)), '+/', '-_'), '=');
    if (!hash_equals($expected, $fields['v1'] ?? '')) {
        throw new RuntimeException('signature mismatch');
    }
}

$options = getopt('', ['jwks-url:', 'issuer:', 'audience:', 'hmac-key-env:', 'max-age:']);
$request = json_decode(stream_get_contents(STDIN), true, 16, JSON_THROW_ON_ERROR);
$headers = array_change_key_case($request['headers'], CASE_LOWER);
try {
    $claims = verify_assertion($headers[ASSERTION_HEADER] ?? '', $options['jwks-url'], $options['issuer'], $options['audience']);
    verify_signature($request['method'], $request['path'], $headers, (string) getenv($options['hmac-key-env']), (int) ($options['max-age'] ?? 60));
    if ($claims['sub'] !== ($headers['x-guichet-sub'] ?? null)) {
        throw new RuntimeException('sub differs between the assertion and the header');
    }
    echo 'OK sub=' . $claims['sub'] . "\n";
    exit(0);
} catch (Throwable $error) {
    echo 'REJECTED: ' . $error->getMessage() . "\n";
    exit(1);
}
