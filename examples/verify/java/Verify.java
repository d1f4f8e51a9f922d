// Verify the identity guichet sends to your application (Java 17, JDK only).
//
// Copy verifyAssertion and verifySignature into your application; the command line below is how
// the guichet test suite runs them (single-file launch, no build step):
//
//   java Verify.java --jwks-url https://app.example.gouv.fr/.guichet/jwks.json \
//     --issuer https://app.example.gouv.fr --audience http://127.0.0.1:9000 \
//     --hmac-key-env GUICHET_HMAC_KEY < request.json
//
// request.json: {"method": "GET", "path": "/path?query", "headers": {"x-guichet-sub": "...", ...}}
// Exit 0 and "OK sub=..." when both proofs hold, exit 1 and "REJECTED: reason" otherwise.

import java.math.BigInteger;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.AlgorithmParameters;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class Verify {
    static final String ASSERTION_HEADER = "x-guichet-assertion";
    static final String SIGNATURE_HEADER = "x-guichet-signature";
    static final long LEEWAY_SECONDS = 5;
    static final Map<String, List<Map<String, Object>>> JWKS_CACHE = new HashMap<>();

    /** Checks the JWT's signature (key from the JWKS by kid), iss, aud, exp; returns its claims. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> verifyAssertion(String token, String jwksUrl, String issuer, String audience)
            throws Exception {
        String[] parts = token.split("\\.", -1);
        if (parts.length != 3) throw new SecurityException("not a compact JWS");
        Map<String, Object> header = (Map<String, Object>) Json.parse(utf8(b64(parts[0])));
        String alg = String.valueOf(header.get("alg"));
        String kid = String.valueOf(header.get("kid"));
        Map<String, Object> jwk = findKey(jwksUrl, kid);
        byte[] signed = (parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII);
        Signature verifier;
        if ("ES256".equals(alg) && "EC".equals(jwk.get("kty"))) {
            verifier = Signature.getInstance("SHA256withECDSAinP1363Format");
            verifier.initVerify(ecKey(jwk));
        } else if ("EdDSA".equals(alg) && "OKP".equals(jwk.get("kty"))) {
            verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(edKey(jwk));
        } else {
            throw new SecurityException("unexpected algorithm " + alg);
        }
        verifier.update(signed);
        if (!verifier.verify(b64(parts[2]))) throw new SecurityException("bad signature");
        Map<String, Object> claims = (Map<String, Object>) Json.parse(utf8(b64(parts[1])));
        if (!issuer.equals(claims.get("iss"))) throw new SecurityException("wrong issuer");
        Object aud = claims.get("aud");
        boolean audienceOk = aud instanceof List ? ((List<Object>) aud).contains(audience) : audience.equals(aud);
        if (!audienceOk) throw new SecurityException("wrong audience");
        if (!(claims.get("exp") instanceof Number exp)) throw new SecurityException("no exp");
        if (Instant.now().getEpochSecond() > exp.longValue() + LEEWAY_SECONDS) throw new SecurityException("expired");
        if (!(claims.get("sub") instanceof String)) throw new SecurityException("no sub");
        return claims;
    }

    /** Checks X-Guichet-Signature over the method, path, time and x-guichet-* headers. */
    public static void verifySignature(String method, String path, Map<String, String> headers, byte[] key, long maxAge)
            throws Exception {
        String value = headers.get(SIGNATURE_HEADER);
        if (value == null) throw new SecurityException("no signature header");
        Map<String, String> fields = new HashMap<>();
        for (String part : value.split(",")) {
            int at = part.indexOf('=');
            if (at > 0) fields.put(part.substring(0, at).trim(), part.substring(at + 1).trim());
        }
        long timestamp = Long.parseLong(fields.getOrDefault("t", "x"));
        if (Math.abs(Instant.now().getEpochSecond() - timestamp) > maxAge) throw new SecurityException("signature too old");
        StringBuilder canonical = new StringBuilder("v1\n").append(method).append('\n').append(path).append('\n')
                .append(timestamp).append('\n');
        for (Map.Entry<String, String> header : new TreeMap<>(headers).entrySet()) {
            String name = header.getKey();
            if (name.startsWith("x-guichet-") && !name.equals(ASSERTION_HEADER) && !name.equals(SIGNATURE_HEADER)) {
                canonical.append(name).append(':').append(header.getValue()).append('\n');
            }
        }
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        byte[] expected = Base64.getUrlEncoder().withoutPadding()
                .encode(mac.doFinal(canonical.toString().getBytes(StandardCharsets.UTF_8)));
        byte[] given = fields.getOrDefault("v1", "").getBytes(StandardCharsets.US_ASCII);
        if (!MessageDigest.isEqual(expected, given)) throw new SecurityException("signature mismatch");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> findKey(String jwksUrl, String kid) throws Exception {
        for (int attempt = 0; attempt < 2; attempt++) {
            if (attempt == 1 || !JWKS_CACHE.containsKey(jwksUrl)) {
                HttpResponse<String> response = HttpClient.newHttpClient().send(
                        HttpRequest.newBuilder(URI.create(jwksUrl)).GET().build(),
                        HttpResponse.BodyHandlers.ofString());
                Map<String, Object> set = (Map<String, Object>) Json.parse(response.body());
                List<Map<String, Object>> keys = new ArrayList<>();
                for (Object key : (List<Object>) set.get("keys")) keys.add((Map<String, Object>) key);
                JWKS_CACHE.put(jwksUrl, keys);
            }
            for (Map<String, Object> key : JWKS_CACHE.get(jwksUrl)) {
                if (kid.equals(key.get("kid"))) return key;
            }
        }
        throw new SecurityException("unknown key id");
    }

    static PublicKey ecKey(Map<String, Object> jwk) throws Exception {
        AlgorithmParameters parameters = AlgorithmParameters.getInstance("EC");
        parameters.init(new ECGenParameterSpec("secp256r1"));
        ECParameterSpec spec = parameters.getParameterSpec(ECParameterSpec.class);
        ECPoint point = new ECPoint(new BigInteger(1, b64((String) jwk.get("x"))), new BigInteger(1, b64((String) jwk.get("y"))));
        return KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(point, spec));
    }

    static PublicKey edKey(Map<String, Object> jwk) throws Exception {
        // RFC 8032: little-endian y, with the parity of x in the top bit of the last byte.
        byte[] encoded = b64((String) jwk.get("x"));
        boolean xOdd = (encoded[encoded.length - 1] & 0x80) != 0;
        byte[] bigEndian = new byte[encoded.length];
        for (int i = 0; i < encoded.length; i++) bigEndian[i] = encoded[encoded.length - 1 - i];
        bigEndian[0] &= 0x7f;
        EdECPoint point = new EdECPoint(xOdd, new BigInteger(1, bigEndian));
        return KeyFactory.getInstance("Ed25519").generatePublic(new EdECPublicKeySpec(NamedParameterSpec.ED25519, point));
    }

    static byte[] b64(String text) {
        return Base64.getUrlDecoder().decode(text);
    }

    static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** A small JSON reader (objects, arrays, strings, numbers, booleans, null): the JDK has none. */
    static final class Json {
        private final String text;
        private int at;

        private Json(String text) {
            this.text = text;
        }

        static Object parse(String text) {
            Json json = new Json(text);
            Object value = json.value();
            json.space();
            if (json.at != text.length()) throw new IllegalArgumentException("trailing JSON");
            return value;
        }

        private void space() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) at++;
        }

        private Object value() {
            space();
            if (at >= text.length()) throw new IllegalArgumentException("unexpected end of JSON");
            char c = text.charAt(at);
            if (c == '{') return object();
            if (c == '[') return array();
            if (c == '"') return string();
            if (text.startsWith("true", at)) { at += 4; return Boolean.TRUE; }
            if (text.startsWith("false", at)) { at += 5; return Boolean.FALSE; }
            if (text.startsWith("null", at)) { at += 4; return null; }
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) at++;
            if (start == at) throw new IllegalArgumentException("bad JSON at " + at);
            String number = text.substring(start, at);
            return number.matches("-?\\d+") ? (Object) Long.valueOf(number) : (Object) Double.valueOf(number);
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            at++;
            space();
            if (text.charAt(at) == '}') { at++; return map; }
            while (true) {
                space();
                String key = string();
                space();
                expect(':');
                map.put(key, value());
                space();
                if (text.charAt(at) == ',') { at++; continue; }
                expect('}');
                return map;
            }
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            at++;
            space();
            if (text.charAt(at) == ']') { at++; return list; }
            while (true) {
                list.add(value());
                space();
                if (text.charAt(at) == ',') { at++; continue; }
                expect(']');
                return list;
            }
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                char c = text.charAt(at++);
                if (c == '"') return out.toString();
                if (c != '\\') { out.append(c); continue; }
                char e = text.charAt(at++);
                switch (e) {
                    case 'n' -> out.append('\n');
                    case 't' -> out.append('\t');
                    case 'r' -> out.append('\r');
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'u' -> { out.append((char) Integer.parseInt(text.substring(at, at + 4), 16)); at += 4; }
                    default -> out.append(e);
                }
            }
        }

        private void expect(char c) {
            if (at >= text.length() || text.charAt(at) != c) throw new IllegalArgumentException("expected " + c + " at " + at);
            at++;
        }
    }

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) options.put(args[i], args[i + 1]);
        Map<String, Object> request = (Map<String, Object>) Json.parse(utf8(System.in.readAllBytes()));
        Map<String, String> headers = new HashMap<>();
        for (Map.Entry<String, Object> e : ((Map<String, Object>) request.get("headers")).entrySet()) {
            headers.put(e.getKey().toLowerCase(), String.valueOf(e.getValue()));
        }
        try {
            Map<String, Object> claims = verifyAssertion(headers.getOrDefault(ASSERTION_HEADER, ""),
                    options.get("--jwks-url"), options.get("--issuer"), options.get("--audience"));
            verifySignature((String) request.get("method"), (String) request.get("path"), headers,
                    System.getenv(options.get("--hmac-key-env")).getBytes(StandardCharsets.UTF_8),
                    Long.parseLong(options.getOrDefault("--max-age", "60")));
            if (!claims.get("sub").equals(headers.get("x-guichet-sub"))) {
                throw new SecurityException("sub differs between the assertion and the header");
            }
            System.out.println("OK sub=" + claims.get("sub"));
        } catch (Exception e) {
            System.out.println("REJECTED: " + e.getMessage());
            System.exit(1);
        }
    }
}
