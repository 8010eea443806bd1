<?php
/*
 * Batch oracle for the differential signing tests: real PHP answers many questions in one run.
 * The rules the reference cases in reference/ were computed with (uksort with strnatcmp, hash_hmac).
 *
 * stdin : {"compare": [[a, b], ...],            pairs for strnatcmp
 *          "sort": [[key, ...], ...],           batches of distinct keys for uksort(..., 'strnatcmp')
 *          "sign": [{"body": "<JSON text>", "secret": "..."}, ...]}
 *                                               request bodies (auth params included), decoded as the
 *                                               Trademax side does: json_decode($body, true)
 * stdout: {"php_version": "...", "compare": [-1|0|1, ...], "sort": [[key, ...], ...],
 *          "sign": [{"pairs": [[k, v], ...], "canonical": "...", "signature": "..."}, ...]}
 */

error_reporting(E_ALL);

function flatten_cast(array $a, ?string $prefix = null): array
{
    $out = [];
    foreach ($a as $k => $v) {
        $key = ($prefix === null) ? (string)$k : $prefix . '[' . $k . ']';
        if (is_array($v)) {
            foreach (flatten_cast($v, $key) as $kk => $vv) {
                $out[$kk] = $vv;
            }
        } else {
            $out[$key] = (string)$v;
        }
    }
    return $out;
}

$in = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$result = ['php_version' => PHP_VERSION, 'compare' => [], 'sort' => [], 'sign' => []];

foreach ($in['compare'] ?? [] as [$a, $b]) {
    $result['compare'][] = strnatcmp($a, $b) <=> 0;
}

foreach ($in['sort'] ?? [] as $keys) {
    $assoc = [];
    foreach ($keys as $k) {
        $assoc[$k] = true;   // numeric-string keys become ints; strnatcmp gets them back as strings
    }
    uksort($assoc, 'strnatcmp');
    $result['sort'][] = array_map('strval', array_keys($assoc));
}

foreach ($in['sign'] ?? [] as $case) {
    $params = json_decode($case['body'], true, 512, JSON_THROW_ON_ERROR);
    $flat = flatten_cast($params);
    uksort($flat, 'strnatcmp');
    $parts = [];
    $pairs = [];
    foreach ($flat as $k => $v) {
        $parts[] = $k . '=' . $v;
        $pairs[] = [(string)$k, (string)$v];
    }
    $canonical = implode('&', $parts);
    $result['sign'][] = [
        'pairs' => $pairs,
        'canonical' => $canonical,
        'signature' => hash_hmac('sha256', $canonical, $case['secret']),
    ];
}

echo json_encode($result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR), "\n";
